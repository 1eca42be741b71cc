"""Evaluation commands: ``seethrough eval`` (lm-eval tasks, provenance, contamination, verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .shared import EVALUATION, JsonOpt, app, console, emit, open_index


@app.command("eval", rich_help_panel=EVALUATION)
def eval_command(
    target: Annotated[Optional[Path], typer.Argument(help="A run folder (its checkpoints) or a Hugging Face model folder.")] = None,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated lm-eval task names.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="RESULTS folder: results.json and samples_<task>.jsonl.")] = None,
    include_path: Annotated[Optional[Path], typer.Option("--include-path", help="A folder of extra task YAMLs (e.g. DEMO/world/tasks).")] = None,
    num_fewshot: Annotated[Optional[int], typer.Option("--num-fewshot", help="Few-shot examples per item (default: each task's own).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Evaluate only the first N items of each task.")] = None,
    batch_size: Annotated[str, typer.Option("--batch-size", help="Rows per forward pass (auto: up to 2048 tokens). Changes speed and memory, never a score: scores are the same to the bit at any batch size.")] = "auto",
    checkpoints: Annotated[Optional[str], typer.Option("--checkpoints", help="Of a run: all, last (default), or steps like 64,128,last; one result folder each, and a metric-by-step table.")] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="The training corpus (indexed): flag contaminated items, report metrics on the clean subset too.")] = None,
    ngram: Annotated[int, typer.Option("--ngram", help="An item is contaminated when one of its n-grams occurs in the corpus (GPT-3: 13).")] = 13,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache folder, keyed by weights, tokenizer, dtype and exact token ids (never by prompt text).")] = None,
    verify: Annotated[Optional[Path], typer.Option("--verify", help="Re-run the evaluation recorded in this RESULTS folder and report items that differ.")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate with lm-evaluation-harness tasks through seethrough's batch-invariant backend."""
    from ..model import resolve_target
    from ..errors import QueryError
    from ..evaluate.run import evaluate_model, run_provenance, verify_results, write_checkpoint_table

    if verify is not None:
        report = verify_results(verify, threads)
        if as_json:
            emit(report)
            return
        console.print(f"{report['items_checked']} items re-evaluated: "
                      + ("all identical" if not report["differences"] else f"{len(report['differences'])} differ"))
        for d in report["differences"][:20]:
            console.print(f"  {d}")
        return
    if target is None or not tasks or out is None:
        raise QueryError("give the model (RUN or MODEL folder), --tasks and --out (or --verify RESULTS)")
    index = open_index(corpus) if corpus is not None else None
    resolved = resolve_target(target, checkpoints)
    if index is not None:
        resolved.check_corpus(index)
    run, models = resolved.run, resolved.checkpoints
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    per_step = {}
    for checkpoint in models:
        step, folder = checkpoint.step, checkpoint.path
        where = out / checkpoint.label if len(models) > 1 else out
        extra = run_provenance(run, step) if run is not None else {}
        if batch_size != "auto" and not (batch_size.isdigit() and int(batch_size) > 0):
            raise QueryError(f"--batch-size {batch_size!r}: give a positive number or auto")
        per_step[step] = evaluate_model(folder, names, where, include_path, num_fewshot, limit, index, ngram, threads,
                                        extra, batch_size=batch_size, cache_dir=cache)
    if len(models) > 1:
        write_checkpoint_table(per_step, out)
    for step, output in per_step.items():
        if as_json:
            emit({"step": step, "results": output["results"], "contamination": output["seethrough"]["contamination"]})
            continue
        console.print(f"[bold]{'step ' + str(step) if step is not None else target}[/]")
        for task, metrics in output["results"].items():
            shown = ", ".join(f"{k.split(',')[0]} {v:.4f}" for k, v in metrics.items()
                              if "," in k and "stderr" not in k and isinstance(v, (int, float)))
            console.print(f"  {task}: {shown}")
            report = (output["seethrough"]["contamination"] or {}).get(task)
            if report:
                console.print(f"    contaminated {report['flagged']}/{report['items']} ({report['ngram']}-gram); clean: "
                              + ", ".join(f"{k} {v:.4f}" for k, v in report["clean"].items()))
    if not as_json:
        console.print(f"results in {out}")
